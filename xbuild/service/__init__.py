"""The build service: the same run_build behind an HTTP API, Celery workers and a nightly schedule.

    api.py         the HTTP API (Flask): submit, state, log, artifacts, cancel
    celery_app.py  the Celery app, its settings, and the build task (a thin shell)
    jobs.py        job records, kept in the artifact store (the one medium every machine shares)
    execute.py     running one job on a worker: lease, source, run_build, publish, state
    leases.py      "this job is running here": a file lock, a Redis key or a RabbitMQ exclusive queue
    reaper.py      requeues jobs whose worker died, fails those that keep killing their worker,
                   forgets jobs past their retention
    nightly.py     tonight's matrix of projects x boards
"""
