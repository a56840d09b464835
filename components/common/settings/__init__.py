"""Settings more than one stage reads: run, storage, data, gates, and the text rules clean and hf_check share.

Each stage's own section lives beside it (components/<stage>/settings.py); components/common/config.py
composes them all into the one RunConfig.
"""
