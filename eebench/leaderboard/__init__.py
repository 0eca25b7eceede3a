"""The leaderboard: a long-format results store of every operating point, threshold-free scores, and the ranked
board (md, csv, one static html page)."""
