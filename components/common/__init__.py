"""What two or more stages need: config, storage, text, reports, errors."""
