"""`keras-birds clean`: audit a data set (cleanvision + leakage + label conflicts + unreadable files)."""
