from services.health.main import run

run()
