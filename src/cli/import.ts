import { parse } from './args.ts';

export const importHelp = `Usage: bastion import [options] <files or directories...>
`;

export async function importCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {}, true);
  if (values.help) process.stdout.write(importHelp);
}
