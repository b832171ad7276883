"""A customer's rights over what is held about them: erasure and export, across every
domain's tables (the one module that reads and deletes them all)."""
