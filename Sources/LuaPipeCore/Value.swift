import OrderedCollections

/// A JSON value as records hold it: integers and floats stay apart, null is a value, and
/// objects keep their key order (docs/reference.md).
public enum Value: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    case object(Record)
}

/// A record: a JSON object whose keys keep their order. A key keeps its place while it
/// exists; new keys are appended.
public struct Record: Sendable, Hashable {
    public var fields: OrderedDictionary<String, Value>

    public init() { fields = [:] }
    public init(_ fields: OrderedDictionary<String, Value>) { self.fields = fields }

    public subscript(key: String) -> Value? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }
    public var keys: OrderedSet<String> { fields.keys }

    /// Renames `old` to `new` in place, keeping the field's position.
    public mutating func rename(_ old: String, to new: String) {
        guard old != new, let index = fields.index(forKey: old) else { return }
        let value = fields.values[index]
        fields.removeValue(forKey: new)
        var rebuilt = OrderedDictionary<String, Value>(minimumCapacity: fields.count)
        for (k, v) in fields {
            if k == old { rebuilt[new] = value } else { rebuilt[k] = v }
        }
        fields = rebuilt
    }
}

extension Record: Sequence {
    public func makeIterator() -> OrderedDictionary<String, Value>.Iterator { fields.makeIterator() }
}

extension Record: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Value)...) {
        fields = OrderedDictionary(elements, uniquingKeysWith: { _, b in b })
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        self = .object(Record(OrderedDictionary(elements, uniquingKeysWith: { _, b in b })))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension Value {
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: Int64(d)
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [Value]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: Record? { if case .object(let o) = self { o } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The JSON type name, for error messages ("number expected, got string").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
