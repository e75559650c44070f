"""One exception family, so the CLI can print a one-line message instead of a traceback."""


class LatentforgeError(Exception):
    """A problem the user can fix: bad input, bad config, incompatible checkpoint."""


class DataError(LatentforgeError):
    """The dataset could not be found, read or used at the requested resolution."""


class ConfigError(LatentforgeError):
    """A configuration key or value is wrong."""


class CheckpointError(LatentforgeError):
    """A checkpoint or run folder is missing, corrupt or from an incompatible configuration."""


class WeightsUnavailableError(LatentforgeError):
    """Pretrained weights (LPIPS, Inception) are not on disk and downloading was not allowed or failed."""


class TrainingDiverged(LatentforgeError):
    """A loss term became NaN or infinite: training stopped before saving the damaged weights."""
