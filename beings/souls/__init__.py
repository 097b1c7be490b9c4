"""The soul registry: versions by hash, promoted to environments; the files written under LUXOS_SOUL_LOG_DIR."""
