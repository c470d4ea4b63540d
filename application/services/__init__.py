"""The services that make up ``Fleet``, one concern per module."""
