/// The buffers a backward pass's input gradients take turns in, when the
/// caller does not keep them (training): each layer's input gradient is only
/// needed until the layer below has consumed it, so two buffers the size of
/// the largest activation serve the whole pass, instead of one buffer per layer
/// kept from step to step.
///
/// A ``Network`` with ``Network/keepsGradients`` off gives every consumed
/// gradient back; layers take their input gradient from here when the
/// ``PassContext`` carries one (``Tensor/gradientBuffer(_:shape:zeroed:context:)``).
/// A buffer whose storage someone else still holds is copied on first write
/// (copy-on-write), never overwritten under them. Not thread-safe: one per
/// executor (a tower has its own).
public final class GradientBuffers<Element: TensorElement>: @unchecked Sendable {
    private var free: [Tensor<Element>] = []
    /// Buffers kept between uses: the one being consumed and the one being written.
    private let capacity = 2

    /// Elements of storage that ``take(shape:zeroed:)`` had to allocate, because
    /// no free buffer was large enough (tests read it: once the buffers have
    /// grown to the largest activation, a backward pass allocates nothing, as
    /// long as every layer writes the buffer it took in place).
    private(set) var allocatedElements = 0

    public init() {}

    /// A tensor of `shape`, in the free buffer with the most storage (zero-filled when `zeroed`).
    func take(shape: Shape, zeroed: Bool) -> Tensor<Element> {
        guard let best = free.indices.max(by: { free[$0].storageCapacity < free[$1].storageCapacity }) else {
            allocatedElements += shape.count
            return Tensor(shape: shape)
        }
        var tensor = free.remove(at: best)
        if tensor.storageCapacity < shape.count { allocatedElements += shape.count }
        tensor.reuse(shape: shape, zeroed: zeroed)
        return tensor
    }

    /// Takes back a gradient that has been consumed; keeps the largest few.
    func give(_ tensor: Tensor<Element>) {
        free.append(tensor)
        if free.count > capacity, let smallest = free.indices.min(by: { free[$0].storageCapacity < free[$1].storageCapacity }) {
            free.remove(at: smallest)
        }
    }
}

extension Tensor {
    /// The storage's allocated capacity in elements.
    var storageCapacity: Int { storage.capacity }

    /// A layer's input-gradient tensor for this pass: from the context's
    /// ``GradientBuffers`` when it carries one (and then `slot` keeps nothing),
    /// else recycled from `slot` as ``recycling(_:shape:zeroed:)`` does.
    static func gradientBuffer(_ slot: inout Tensor?, shape: Shape, zeroed: Bool, context: PassContext) -> Tensor {
        if let buffers = context.gradientBuffers as? GradientBuffers<Element> {
            slot = nil
            return buffers.take(shape: shape, zeroed: zeroed)
        }
        return recycling(&slot, shape: shape, zeroed: zeroed)
    }

    /// As ``gradientBuffer(_:shape:zeroed:context:)``, for a layer that skips
    /// its input gradient when the context does not need it
    /// (``PassContext/needsInputGradient``): then an empty tensor `[0]`, and
    /// `slot` keeps what it held.
    static func inputGradientBuffer(_ slot: inout Tensor?, shape: Shape, zeroed: Bool, context: PassContext) -> Tensor {
        context.needsInputGradient ? gradientBuffer(&slot, shape: shape, zeroed: zeroed, context: context) : Tensor(shape: [0])
    }
}
