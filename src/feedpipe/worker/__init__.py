"""The long-running worker: scheduled sync, build, digest planning and dispatch (`feedpipe run`)."""
