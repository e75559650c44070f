"""What a person reads: run and sweep records from their folders (files only), the comparison table across runs,
stability figures, and the self-contained HTML page (`latentforge report`, `latentforge compare`)."""
