/// What a data set holds, for `alexnet data inspect`: format, counts per
/// class, image sizes, and the problems found by reading every image.
public struct DatasetReport {
    /// The data set's format (``ImageDataset/format``).
    public var format: String
    /// Where it came from (``ImageDataset/location``).
    public var location: String
    /// Number of examples.
    public var count: Int
    /// Class names, by label.
    public var classNames: [String]
    /// Examples per label, indexed by label.
    public var countsPerClass: [Int]
    /// How many of the checked images have each size.
    public var imageSizes: [ImageSize: Int]
    /// How many images were read to find their sizes and problems.
    public var checked: Int
    /// Every image that failed to read, in example order.
    public var problems: [DataError]
    /// The data set's notes (see ``ImageDataset/notes``).
    public var notes: [String]

    /// Reads the images of `dataset` to find their sizes and problems.
    ///
    /// Data sets whose images all share a stored size (CIFAR-10, IDX) were
    /// fully checked when they were opened; for JPEG folders every image is
    /// decoded, or `limit` of them evenly spread over the examples.
    /// - Parameter threads: decoding threads (the report does not depend on them).
    public static func make(dataset: any ImageDataset, limit: Int? = nil, threads: Int = 1) -> DatasetReport {
        var report = DatasetReport(format: dataset.format, location: dataset.location, count: dataset.count,
                                   classNames: dataset.classNames, countsPerClass: dataset.countsPerClass,
                                   imageSizes: [:], checked: 0, problems: [], notes: dataset.notes)
        if let size = dataset.storedSize {
            report.imageSizes = [size: dataset.count]
            report.checked = dataset.count
            return report
        }
        let wanted = min(dataset.count, max(0, limit ?? dataset.count))
        let indices = (0..<wanted).map { $0 * dataset.count / max(1, wanted) }
        var results = [Result<ImageSize, DataError>](repeating: .success(ImageSize(channels: 0, height: 0, width: 0)),
                                                     count: indices.count)
        results.withUnsafeMutableBufferPointer { slots in
            WorkerPool(workerCount: threads, label: "inspect").parallelFor(indices.count) { task, _ in
                do {
                    slots[task] = .success(ImageSize(of: try dataset.image(at: indices[task])))
                } catch let error as DataError {
                    slots[task] = .failure(error)
                } catch {
                    slots[task] = .failure(DataError(file: dataset.exampleName(at: indices[task]), problem: "\(error)"))
                }
            }
        }
        for result in results {
            switch result {
            case .success(let size): report.imageSizes[size, default: 0] += 1
            case .failure(let error): report.problems.append(error)
            }
        }
        report.checked = indices.count
        return report
    }

    /// The report as text, one fact a line.
    public var text: String {
        var lines = ["format:   \(format)", "location: \(location)", "examples: \(count)", "classes:  \(classNames.count)"]
        let width = min(24, classNames.map(\.count).max() ?? 0)
        for (label, name) in classNames.enumerated() {
            let count = label < countsPerClass.count ? countsPerClass[label] : 0
            lines.append("  " + String(label).leftPadded(to: 4) + "  " + name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0)
                         + "  " + String(count).leftPadded(to: 8))
        }
        let sizes = imageSizes.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key.description < $1.key.description) }
        lines.append("image sizes (C x H x W) of \(checked) image(s) read:")
        for (size, count) in sizes.prefix(10) { lines.append("  " + size.description.padding(toLength: 14, withPad: " ", startingAt: 0) + String(count).leftPadded(to: 8)) }
        if sizes.count > 10 { lines.append("  ... and \(sizes.count - 10) more sizes") }
        for note in notes { lines.append("note: \(note)") }
        lines.append(problems.isEmpty ? "problems: none" : "problems: \(problems.count)")
        for problem in problems.prefix(20) { lines.append("  \(problem)") }
        if problems.count > 20 { lines.append("  ... and \(problems.count - 20) more") }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// The string right-aligned in `width` characters.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
