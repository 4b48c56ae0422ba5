# Scripts.
