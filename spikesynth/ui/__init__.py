"""The browser face of the instrument: ``spikesynth play --ui`` and ``spikesynth ui``.

* :mod:`.tap` — the audio side's copy of each output block into a preallocated ring;
* :mod:`.patchfile` — saving a patch with its comments and key order (round-trip YAML);
* :mod:`.bridge` — everything the page may do to the engine, and the views it is sent;
* :mod:`.server` — the HTTP/websocket server (the only module importing the web framework).

Nothing here is imported by ``spikesynth`` itself; the command line imports it lazily.
"""
