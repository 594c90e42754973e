from sora_cli.cli import entry

entry()
