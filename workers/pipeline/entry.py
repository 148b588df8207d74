"""What each ``ingest worker`` process imports: dramatiq's CLI loads a module that sets the broker.

This is the one module with import-time effects, on purpose: it is the process entry point.
Settings are read from the environment once, here, then passed down explicitly.
"""

from __future__ import annotations

from dramatiq import Worker

from workers.core.broker import make_broker
from workers.core.cpus import available_cpus
from workers.core.logs import configure_logging
from workers.core.metrics import DramatiqMetrics, Liveness, PipelineMetrics, metrics_dir
from workers.core.redisclient import redis_client
from workers.core.settings import Settings
from workers.discover.scheduler import SchedulerMiddleware
from workers.pipeline.actors import declare_actors
from workers.pipeline.runtime import build_runtime, page_pool, page_pool_size

settings = Settings.from_env()
# dramatiq's CLI builds its Worker with the default 1 s idle poll, and a delayed message (a fetch
# waiting for its host's slot) wakes only when its consumer polls: up to a second late, twice
# (delay queue, then fetch queue).  A shorter poll keeps politeness delays close to exact.
_defaults = Worker.__init__.__kwdefaults__
assert _defaults is not None and "worker_timeout" in _defaults, "dramatiq's Worker changed: revisit INGEST_POLL_MS"
_defaults["worker_timeout"] = settings.poll_ms
configure_logging(settings)
_client = redis_client(settings.broker_url)
# Page parsing (discover, extract) runs in killable children, started only when a page comes: a
# fetch or sink worker never starts one.
_pool = page_pool(settings, page_pool_size(settings, available_cpus()))
runtime = build_runtime(settings, redis_client=_client, pool=_pool)
_metrics_dir = metrics_dir()
if settings.metrics_port and _metrics_dir is not None:
    # `ingest worker --metrics-port` set the multi-process directory before starting this process.
    runtime.metrics = PipelineMetrics()
broker = make_broker(settings, dead_letters=runtime.dead_letter, dead_letter_store=runtime.dead_letters,
                     redis_client=_client)
actors = declare_actors(broker, runtime)
broker.add_middleware(
    SchedulerMiddleware(runtime.schedule, runtime.sources, runtime.send, runtime.seen)
)
if runtime.metrics is not None and _metrics_dir is not None:
    broker.add_middleware(DramatiqMetrics())
    broker.add_middleware(Liveness(_metrics_dir))
