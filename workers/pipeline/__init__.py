"""Wiring the stages onto a broker.

``actors`` declares one Dramatiq actor per stage (thin shells over the stage packages);
``runtime`` builds the services they share (memory or Redis); ``entry`` is what worker processes
import; ``crawl`` runs everything embedded in one process (``run_embedded``); ``enqueue`` sends URLs
to Redis workers (``enqueue_urls``); ``reextract`` runs the current extractor over stored pages.
"""
