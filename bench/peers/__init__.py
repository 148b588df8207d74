"""Peers for bench/speed.py: trafilatura's command line and a Scrapy spider with trafilatura."""
