from gateway.main import run

run()
