/// Fixed partitions of work. Their boundaries depend only on the problem size,
/// never on the number of threads, which is what makes every result bitwise
/// independent of the thread count.
public enum Partition {
    /// Number of batch chunks over which per-layer parameter gradients are
    /// accumulated: each chunk sums its images in order into its own buffer,
    /// then the chunk buffers are added in chunk order. A constant, so a
    /// gradient never depends on how many threads computed it.
    public static let gradientChunkLimit = 8

    /// The half-open ranges that split `0..<count` into `parts` nearly equal,
    /// contiguous pieces (the first `count % parts` pieces are one longer).
    public static func ranges(count: Int, parts: Int) -> [Range<Int>] {
        let parts = max(1, min(parts, count))
        let base = count / parts
        let extra = count % parts
        var result: [Range<Int>] = []
        result.reserveCapacity(parts)
        var start = 0
        for p in 0..<parts {
            let length = base + (p < extra ? 1 : 0)
            result.append(start..<(start + length))
            start += length
        }
        return result
    }

    /// Consecutive tiles of `tile` elements covering `0..<count` (the last may be shorter).
    public static func tiles(count: Int, tile: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: tile).map { $0..<min($0 + tile, count) }
    }

    /// The batch chunks for parameter-gradient accumulation over `batch` images.
    public static func gradientChunks(batch: Int) -> [Range<Int>] {
        ranges(count: batch, parts: gradientChunkLimit)
    }
}
