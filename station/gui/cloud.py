"""``python -m station.gui.cloud TRIAL INDEX``: one frame's point cloud in an open3d window.

Run as its own process by the viewer: open3d's window has its own event loop and GL context,
which must not block (or share a thread with) the Qt window.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import open3d as o3d

    from station.gui.media import TrialMedia, frame_cloud

    trial, index = (argv or sys.argv[1:])[:2]
    with TrialMedia(trial, cache_frames=1) as media:
        i = int(index)
        cloud = frame_cloud(media, i)
        title = f"{media.name} frame {media.number(i)} ({len(cloud.points)} points)"
    cloud.transform([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]])  # camera y down -> screen up
    o3d.visualization.draw_geometries([cloud], window_name=title, width=960, height=720)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
