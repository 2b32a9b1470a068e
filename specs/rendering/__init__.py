"""What the documentation uses: ``law()`` for gallery pages and the graph pictures."""
