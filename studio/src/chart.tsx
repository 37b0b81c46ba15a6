// A line chart on uPlot: steps on x, one series per line.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  color: string;
  /** Dashes and gaps in pixels, for a line that pairs with a solid one of the same colour. */
  dash?: number[];
  points: [number, number][];
}

/** Lines over a shared x axis; x values missing from a line are gaps. */
export function Chart({ lines, xLabel, yLabel, title }: { lines: Line[]; xLabel: string; yLabel: string; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const xs = [...new Set(lines.flatMap((l) => l.points.map(([x]) => x)))].sort((a, b) => a - b);
    const series = lines.map((l) => {
      const byX = new Map(l.points);
      return xs.map((x) => byX.get(x) ?? null);
    });
    const width = Math.max(280, box.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 260,
        scales: { x: { time: false } },
        axes: [
          // Steps are whole; small rates read better with a few significant digits.
          { label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
          { label: yLabel, size: 70, values: (_u, splits) => splits.map((v) => String(+v.toPrecision(3))) },
        ],
        series: [{ label: xLabel }, ...lines.map((l) => ({ label: l.label, stroke: l.color, dash: l.dash, width: 2, spanGaps: true }))],
      },
      [xs, ...series] as uPlot.AlignedData,
      box.current,
    );
    return () => plot.destroy();
  }, [lines, xLabel, yLabel]);
  return <div className="chart" ref={box} role="img" aria-label={title} />;
}
