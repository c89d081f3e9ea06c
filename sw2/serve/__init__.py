"""`sw2 serve`: a bundle as an HTTP service (FastAPI + uvicorn), protected, batched and monitored.

settings.py     what the command sets, passed to each worker process as JSON
auth.py         the API key: generated on first start into a file only its owner reads, bearer tokens
payloads.py     a request's JSON or upload -> examples, every problem a 4xx naming it
batcher.py      dynamic micro-batching: concurrent requests share one call of the network
monitor.py      Prometheus metrics: requests, latency, batch sizes, predicted classes, input drift (PSI)
request_log.py  optional request logging with the spec's columns masked before anything is written
page.py         the small web page at /
app.py          the FastAPI application of one worker
run.py          starting uvicorn with N workers
"""
