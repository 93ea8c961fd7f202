"""One module per CLI verb. COMMANDS is the registry cli.py builds the app from (a test keeps it in sync).

Each verb module holds the verb's function and SETTING_NAMES: how its user spells the settings that domain errors
name by key (errors.SettingError), where that is not one of the command's own options (those name themselves:
the domain's `max_new_tokens` is the --max-new-tokens of a command that has it). A verb whose option defaults to
an environment variable says so in ENV_DEFAULTS (key -> variable): when the option is not given and the variable
is set, errors name the variable.

Verbs land here when they are built; there are no placeholder commands.
"""

COMMANDS = ("generate", "chat", "finetune", "classify", "eval", "distill", "embed", "search", "attention", "serve")
