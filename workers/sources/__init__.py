"""The sources file: the sites to crawl, their start pages, URL patterns, intervals and limits.

``sourcefile`` reads and validates the TOML file into ``Source`` values (``load_sources``), with
every problem reported at its line (``checks``, ``tomlspans``); ``registry`` keeps the loaded
sources where every worker finds them (memory or Redis).
"""
