from ragcli.cli import run

run()
