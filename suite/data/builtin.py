"""The suite's own data extension points, registered as a core plugin (see ``CORE_PLUGINS``)."""
