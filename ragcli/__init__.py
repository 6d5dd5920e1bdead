"""ragcli: retrieval-augmented generation over your own documents, from one command-line tool."""

__version__ = "0.1.0"
