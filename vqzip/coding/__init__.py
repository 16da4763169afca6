"""The lossless stage: exact integer models and range coding (the base prior, the refinement
symbols, the temporal coder) and the container that frames them."""
