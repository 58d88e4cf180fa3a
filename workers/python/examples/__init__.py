"""Python ports of Tasker's example handlers (``workers/rust/src/``), one
module per example workflow of ``config/tasks/``. Importing a module
registers its handlers in :data:`tasker.default_registry`; import
:mod:`examples.all` to register every one::

    python -m tasker worker --app examples.all
"""
