"""The SQL store: tables, engine, repositories, migrations."""
