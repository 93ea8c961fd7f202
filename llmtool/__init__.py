"""llmtool: put Hugging Face models to work from one CLI and one recipe format."""

__version__ = "0.1.0"
