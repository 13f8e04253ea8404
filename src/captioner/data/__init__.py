"""Datasets: importers of every format into one manifest, the seminar's files, and the build-time readers of
system word data (lexicon: WordNet, the English word list)."""
