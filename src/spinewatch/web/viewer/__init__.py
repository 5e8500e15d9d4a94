"""The CT viewer (NiiVue) and the level check of an analysed scan."""
