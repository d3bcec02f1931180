"""The suite's own report extension points, registered as a core plugin (see ``CORE_PLUGINS``)."""
