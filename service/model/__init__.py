"""Frozen pydantic models shared by every stage; imports nothing but pydantic and the stdlib."""
