import Foundation

import Examples

// The tutorial's autograd examples, printed as the tutorial prints them. It takes no
// arguments: --help says so, anything else is refused.
let usage = """
    usage: autograd-tour

    Runs every autograd example of the tutorial (../shared/seed/) in its order and prints
    the tutorial's lines: requires_grad, grad_fn, backward(), backward(gradient), detach(),
    no_grad. It takes no options.
    """
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains(where: { ["-h", "--help", "help"].contains($0) }) {
    print(usage)
    exit(0)
}
if let first = arguments.first {
    FileHandle.standardError.write("autograd-tour: error: unexpected argument '\(first)'; it takes no arguments (see --help)\n"
        .data(using: .utf8)!)
    exit(1)
}
do {
    try AutogradTour.run { print($0) }
} catch {
    FileHandle.standardError.write("autograd-tour: error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
