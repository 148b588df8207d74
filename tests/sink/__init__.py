"""The sink stage: records written once, new versions of refreshed articles, nothing lost in a race."""
