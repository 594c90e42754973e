from sora_cli.cli import main

main()
