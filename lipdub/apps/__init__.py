"""lipdub/apps"""
