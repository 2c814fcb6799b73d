"""`b2c up --demo`: simulated ERP/PIM/CRM systems, the services file that registers them, sample jobs."""
