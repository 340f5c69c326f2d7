/**
 * Everything the soak starts registers how to undo it here; `runAll` undoes it in reverse order, once,
 * on success, on failure and on SIGINT/SIGTERM. Each step is bounded so a hung child cannot keep the
 * harness alive.
 */
type Step = { name: string; run: () => Promise<void> | void };

export class Cleanup {
  private readonly steps: Step[] = [];
  private running: Promise<void> | null = null;

  add(name: string, run: Step['run']): () => void {
    const step = { name, run };
    this.steps.push(step);
    return () => {
      const i = this.steps.indexOf(step);
      if (i !== -1) this.steps.splice(i, 1);
    };
  }

  runAll(stepTimeoutMs = 15_000): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(step.run),
            new Promise<void>((_, reject) => {
              timer = setTimeout(() => reject(new Error('timed out')), stepTimeoutMs);
            }),
          ]);
        } catch (error) {
          process.stderr.write(`soak: cleanup "${step.name}" failed: ${(error as Error).message}\n`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }
}
