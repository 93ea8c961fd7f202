"""One module per CLI verb. COMMANDS is the registry cli.py builds the app from (a test keeps it in sync).

Verbs land here when they are built; there are no placeholder commands.
"""

COMMANDS = ("generate", "finetune", "classify", "eval", "distill")
