"""The suite's own rules extension points, registered as a core plugin (see ``CORE_PLUGINS``)."""
