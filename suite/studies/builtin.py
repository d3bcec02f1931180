"""The suite's own studies extension points, registered as a core plugin (see ``CORE_PLUGINS``)."""
