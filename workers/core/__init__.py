"""What every stage shares, importing no stage: settings (``settings``), message schemas and
builders (``messages``), the broker and its middleware (``broker``, ``redisbroker``, ``encoder``,
``middleware``), structured logs (``logs``), object storage (``storage``), URL normalisation
(``urls``), HTML parsing (``htmlparse``) and argument types shared by the CLI (``argtypes``)."""
