from services.probes.main import run

run()
