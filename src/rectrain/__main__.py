from rectrain.cli.main import run

run()
