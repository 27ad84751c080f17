import Foundation

import Examples

// The tutorial's autograd examples, printed as the tutorial prints them.
do {
    try AutogradTour.run { print($0) }
} catch {
    print("error: \(error)")
    exit(1)
}
