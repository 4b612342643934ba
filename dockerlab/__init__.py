"""dockerlab: the course tooling around fakeroot_builder.

- ``labinfo``   the lab and task metadata (``labs/info.toml``)
- ``impl``      load a lab implementation: the student's ``labs/`` or ``solutions/``
- ``inspect``   an image's stack as ``dockerlab inspect`` shows it, from any implementation
- ``export``    ``docker save`` archives and ``docker pull`` transcripts of a root
- ``grading``   grade a class of submissions (sandboxed), release, platform bundles
- ``cli``       the ``dockerlab`` command
"""

__all__: list[str] = []
