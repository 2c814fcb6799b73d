from services.jobs.main import run

run()
